"""Reading exported lists the way their users do."""

import csv
from pathlib import Path


def read_list(path: Path) -> list[tuple[str, int]]:
    """A VideoMAE list as its users read it: pandas.read_csv(header=None, delimiter=' ')
    where pandas is installed, the csv module with a space delimiter otherwise."""
    try:
        import pandas
    except ImportError:
        with open(path, newline="") as f:
            return [(row[0], int(row[1])) for row in csv.reader(f, delimiter=" ")]
    frame = pandas.read_csv(path, header=None, delimiter=" ")
    assert frame.shape[1] == 2
    return [(str(p), int(v)) for p, v in frame.itertuples(index=False)]
