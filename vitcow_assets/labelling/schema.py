"""The label database's tables (SQLAlchemy Core) and the upgrade of an older database.

Tables, all insert-only except ``assignments`` (replaced per annotator) and ``tokens``
(a revocation stamps ``revoked_at``):

- ``label_events``: labels and undos (``labelling.events``), with ``unsure``;
- ``assignments``: (annotator, crop_id) -> farm, queue position;
- ``adjudications``: a reviewer's decision on a crop, or an undo naming the decision it
  takes back (``undoes`` unique: a decision is undone at most once);
- ``gold_labels``: reference labels of gold crops (the latest row of a crop is in force);
- ``tokens``: sign-in tokens, by their SHA-256 only (the token itself is never stored);
- ``sessions``: browser sign-ins made with a token (``labelling.sessions``), by the SHA-256
  of their random id only; a session ends when it expires, is signed out (``ended_at``) or
  its token is revoked;
- ``label_schema``: the schema version of this database.

``upgrade(conn, backend)`` brings any database to ``SCHEMA_VERSION`` in place, inside the
caller's write transaction, losing nothing: version 1 (``label_events`` without ``unsure``,
``assignments``; no ``label_schema`` table) gets the ``unsure`` column (false for every
existing label) and the new tables; version 2 gets ``sessions``. A database written by a
newer vitcow is refused.

May import sqlalchemy and ``labelling.events``; no web framework, no dagster.
"""

import sqlalchemy as sa

from vitcow_assets.labelling.events import NAME_CHARS, LabelError

#: the schema this code writes (1: label_events + assignments; 2: unsure, adjudications, gold, tokens; 3: sessions)
SCHEMA_VERSION = 3
ROLES = ("annotator", "reviewer")
DECISION, UNDO_DECISION = "decision", "undo"
CROP_ID_CHARS = 64
SOURCE_CHARS = 256

metadata = sa.MetaData()
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

label_events = sa.Table(
    "label_events",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("crop_id", sa.String(CROP_ID_CHARS), nullable=False),
    sa.Column("annotator", sa.String(NAME_CHARS), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("label", sa.String(NAME_CHARS), nullable=True),
    sa.Column("start_frame", sa.Integer, nullable=True),
    sa.Column("end_frame", sa.Integer, nullable=True),
    sa.Column("undoes", ID, sa.ForeignKey("label_events.id"), nullable=True, unique=True),
    sa.Column("labelled_at", sa.DateTime(timezone=False), nullable=False),  # UTC
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("unsure", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("kind IN ('label', 'undo')", name="label_events_kind"),
    sa.CheckConstraint("(kind = 'label') = (label IS NOT NULL)", name="label_events_label"),
    sa.CheckConstraint("(kind = 'undo') = (undoes IS NOT NULL)", name="label_events_undoes"),
    sa.Index("label_events_pair", "annotator", "crop_id"),
    sa.Index("label_events_crop", "crop_id"),
)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("annotator", sa.String(NAME_CHARS), primary_key=True),
    sa.Column("crop_id", sa.String(CROP_ID_CHARS), primary_key=True),
    sa.Column("farm", sa.String(NAME_CHARS), nullable=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=False), nullable=False),
)

adjudications = sa.Table(
    "adjudications",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("crop_id", sa.String(CROP_ID_CHARS), nullable=False),
    sa.Column("reviewer", sa.String(NAME_CHARS), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("label", sa.String(NAME_CHARS), nullable=True),
    sa.Column("start_frame", sa.Integer, nullable=True),
    sa.Column("end_frame", sa.Integer, nullable=True),
    sa.Column("undoes", ID, sa.ForeignKey("adjudications.id"), nullable=True, unique=True),
    sa.Column("decided_at", sa.DateTime(timezone=False), nullable=False),  # UTC
    sa.Column("source", sa.String(16), nullable=False),
    sa.CheckConstraint(f"kind IN ('{DECISION}', '{UNDO_DECISION}')", name="adjudications_kind"),
    sa.CheckConstraint(f"(kind = '{DECISION}') = (label IS NOT NULL)", name="adjudications_label"),
    sa.CheckConstraint(f"(kind = '{UNDO_DECISION}') = (undoes IS NOT NULL)", name="adjudications_undoes"),
    sa.Index("adjudications_crop", "crop_id"),
)

gold_labels = sa.Table(
    "gold_labels",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("crop_id", sa.String(CROP_ID_CHARS), nullable=False),
    sa.Column("label", sa.String(NAME_CHARS), nullable=False),
    sa.Column("start_frame", sa.Integer, nullable=True),
    sa.Column("end_frame", sa.Integer, nullable=True),
    sa.Column("marked_at", sa.DateTime(timezone=False), nullable=False),  # UTC
    sa.Column("source", sa.String(SOURCE_CHARS), nullable=False),
    sa.Index("gold_labels_crop", "crop_id"),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("annotator", sa.String(NAME_CHARS), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),  # UTC
    sa.Column("revoked_at", sa.DateTime(timezone=False), nullable=True),
    sa.CheckConstraint("role IN ('annotator', 'reviewer')", name="tokens_role"),
    sa.Index("tokens_annotator", "annotator"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("session_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("token_id", ID, sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),  # UTC
    sa.Column("expires_at", sa.DateTime(timezone=False), nullable=False),  # UTC
    sa.Column("ended_at", sa.DateTime(timezone=False), nullable=True),  # UTC: signed out
    sa.Index("sessions_token", "token_id"),
)

label_schema = sa.Table("label_schema", metadata, sa.Column("version", sa.Integer, nullable=False))


def _version(conn: sa.Connection) -> int | None:
    """The recorded schema version; None for a database without ``label_schema``."""
    if not sa.inspect(conn).has_table("label_schema"):
        return None
    return conn.execute(sa.select(sa.func.max(label_schema.c.version))).scalar()


def upgrade(conn: sa.Connection, backend: str) -> int:
    """Bring the database on ``conn`` to ``SCHEMA_VERSION`` (inside the caller's write
    transaction); returns the version it was at (0: new, 1: before ``label_schema``)."""
    found = _version(conn)
    if found is not None and found > SCHEMA_VERSION:
        raise LabelError(f"the labels database is at schema version {found}; this vitcow knows up to {SCHEMA_VERSION}: upgrade vitcow")
    existed = sa.inspect(conn).has_table("label_events")
    metadata.create_all(conn, checkfirst=True)
    columns = {c["name"] for c in sa.inspect(conn).get_columns("label_events")}
    if "unsure" not in columns:  # version 1
        false = "false" if backend == "postgresql" else "0"
        conn.execute(sa.text(f"ALTER TABLE label_events ADD COLUMN unsure BOOLEAN NOT NULL DEFAULT {false}"))
    if found != SCHEMA_VERSION:
        conn.execute(label_schema.delete())
        conn.execute(label_schema.insert().values(version=SCHEMA_VERSION))
    return found if found is not None else (1 if existed else 0)
