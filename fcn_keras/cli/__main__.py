"""`python -m fcn_keras.cli`: the same as the `fcn-keras` program."""

import sys

from fcn_keras.cli import main

sys.exit(main())
