import pytest

from vitcow_assets.core.taxonomy import TaxonomyError, parse_taxonomy
from vitcow_assets.labelling.taxonomy_file import load_taxonomy

SMALL = """
classes: [Lying, Standing]
labels:
  - {label: Standing, key: s, class: Standing}
  - {label: Lying, key: l, class: Lying}
  - {label: Lying_down, key: d, class: Lying, segment: true}
  - {label: Delete, key: x, exclude: true}
"""


def test_default_taxonomy_maps_fourteen_labels_onto_eight_classes():
    t = load_taxonomy()
    assert len(t.labels) == 15 and t.class_of("Delete") is None
    assert t.classes == ("Drinking", "Feeding", "Lying", "Other", "Scratching", "Self-grooming", "Standing", "Walking")
    assert t.class_of("Self-grooming-lying") == "Self-grooming" and t.class_index("Walking") == 7
    assert len({f.key for f in t.labels}) == 15


def test_fingerprint_follows_the_mapping_not_the_file_layout():
    a = parse_taxonomy(SMALL)
    assert parse_taxonomy("\n\n" + SMALL.replace("[Lying, Standing]", "[Standing, Lying]")).fingerprint == a.fingerprint
    moved = parse_taxonomy(SMALL.replace("Lying_down, key: d, class: Lying", "Lying_down, key: d, class: Standing"))
    assert moved.fingerprint != a.fingerprint


@pytest.mark.parametrize(
    "change, message",
    [
        (("key: s,", "key: l,"), "keys repeat"),
        (("key: s,", "key: z,"), "reserved"),
        (("class: Standing}", "class: Sitting}"), "not in classes"),
        (("exclude: true", "exclude: true, class: Lying"), "either"),
        (("[Lying, Standing]", "[Lying, Standing, Walking]"), "no label mapped"),
    ],
)
def test_bad_taxonomies_fail_in_one_line_naming_the_entry(change, message):
    with pytest.raises(TaxonomyError, match=message) as info:
        parse_taxonomy(SMALL.replace(*change), "t.yaml")
    assert "\n" not in str(info.value) and str(info.value).startswith("t.yaml")
