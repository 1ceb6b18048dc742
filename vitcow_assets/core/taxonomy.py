"""The behaviour taxonomy: fine labels an annotator picks (each with one keyboard key), the
training classes they map to, and the labels that exclude a crop (``Delete``).

A taxonomy file (YAML)::

    name: cattle-behaviour
    version: 1
    classes: [Drinking, Feeding, Lying, Other, Scratching, Self-grooming, Standing, Walking]
    labels:
      - {label: Standing, key: s, class: Standing}
      - {label: Standing_up, key: u, class: Other, segment: true}   # transitional: trim it
      - {label: Delete, key: x, exclude: true}                      # unusable crop

Every label maps to one of ``classes`` or is an exclusion; keys are single characters,
unique, and none of ``RESERVED_KEYS`` (the labelling page's own controls). Class indices
are alphabetical (VideoMAE's convention). ``fingerprint`` hashes what decides a dataset
(labels, keys, classes, mapping), so a changed mapping is a new taxonomy; the labels
themselves are stored by fine label and never rewritten.

Pure: parsing takes text; loading the shipped default is ``labelling.taxonomy_file``'s job.
"""

import dataclasses
import hashlib
import json

import yaml

#: the labelling page's own keys: play, undo, skip, segment start/end, loop, slower, faster, unsure
RESERVED_KEYS = frozenset({" ", "z", "n", "[", "]", "p", "-", "=", "+", "?"})
DELETE = "Delete"


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be used; the message names the file and the entry."""


@dataclasses.dataclass(frozen=True)
class FineLabel:
    label: str
    key: str
    #: the training class, or None for an exclusion
    target: str | None
    #: a transitional behaviour: the annotator marks its start and end frames
    segment: bool = False

    @property
    def excluded(self) -> bool:
        return self.target is None


@dataclasses.dataclass(frozen=True)
class Taxonomy:
    name: str
    version: int
    classes: tuple[str, ...]
    labels: tuple[FineLabel, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(sorted(self.classes)))

    def get(self, label: str) -> FineLabel | None:
        return next((f for f in self.labels if f.label == label), None)

    def class_of(self, label: str) -> str | None:
        """Training class of a fine label; None when it excludes the crop. ``KeyError`` for
        a label the taxonomy does not have."""
        found = self.get(label)
        if found is None:
            raise KeyError(label)
        return found.target

    def class_index(self, cls: str) -> int:
        return self.classes.index(cls)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(f.label for f in self.labels)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "classes": list(self.classes),
            "labels": [
                {"label": f.label, "key": f.key, **({"exclude": True} if f.excluded else {"class": f.target}), **({"segment": True} if f.segment else {})}
                for f in self.labels
            ],
        }

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _entry(i: int, item, classes: set[str], name: str) -> FineLabel:
    where = f"{name}: labels[{i}]"
    if not isinstance(item, dict):
        raise TaxonomyError(f"{where}: expected a mapping with label, key and class (or exclude: true)")
    unknown = set(item) - {"label", "key", "class", "exclude", "segment"}
    if unknown:
        raise TaxonomyError(f"{where}: unknown key(s) {sorted(map(str, unknown))}")
    label, key = item.get("label"), item.get("key")
    if not isinstance(label, str) or not label.strip() or "," in label:
        raise TaxonomyError(f"{where}: 'label' must be a non-empty name without commas")
    if not isinstance(key, str) or len(key) != 1:
        raise TaxonomyError(f"{where} ({label}): 'key' must be one character")
    if key.lower() in RESERVED_KEYS:
        raise TaxonomyError(f"{where} ({label}): key {key!r} is reserved by the labelling page ({' '.join(sorted(RESERVED_KEYS)).strip()} and space)")
    exclude = item.get("exclude", False) is True
    target = item.get("class")
    if exclude == (target is not None):
        raise TaxonomyError(f"{where} ({label}): give either 'class' or 'exclude: true'")
    if target is not None and target not in classes:
        raise TaxonomyError(f"{where} ({label}): class {target!r} is not in classes {sorted(classes)}")
    return FineLabel(label.strip(), key, None if exclude else target, item.get("segment", False) is True)


def parse_taxonomy(text: str, name: str = "taxonomy") -> Taxonomy:
    """Parse and validate a taxonomy file's text; one-line ``TaxonomyError`` otherwise."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{name}: not valid YAML ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list) or not isinstance(data.get("labels"), list):
        raise TaxonomyError(f"{name}: expected 'classes' (a list) and 'labels' (a list of entries)")
    classes = data["classes"]
    if not classes or not all(isinstance(c, str) and c.strip() for c in classes) or len(set(classes)) != len(classes):
        raise TaxonomyError(f"{name}: 'classes' must be distinct non-empty names")
    labels = [_entry(i, item, set(classes), name) for i, item in enumerate(data["labels"])]
    for attr in ("label", "key"):
        values = [getattr(f, attr).lower() for f in labels]
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise TaxonomyError(f"{name}: {attr}s repeat: {repeated}")
    unused = sorted(set(classes) - {f.target for f in labels})
    if unused:
        raise TaxonomyError(f"{name}: classes {unused} have no label mapped to them")
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise TaxonomyError(f"{name}: 'version' must be an integer")
    return Taxonomy(str(data.get("name") or "taxonomy"), version, tuple(classes), tuple(labels))
