"""Footage intake: where files live, which videos are registered, which sources hold new
footage and when it has finished arriving (with what is known of each file in the intake
state, and looks that skip what cannot have changed), the prompt files beside it, and bringing it into
the storage root (local or remote). No Dagster here."""
