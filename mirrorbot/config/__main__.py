"""`python -m mirrorbot.config --schema`: print the config's JSON Schema."""

import sys

from mirrorbot.config.schema import main

sys.exit(main())
