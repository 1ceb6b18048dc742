import sys

from vitcow_assets.cli import console

sys.exit(console())
