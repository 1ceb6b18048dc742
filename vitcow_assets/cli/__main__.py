import sys

from vitcow_assets.cli import main

sys.exit(main())
