"""``python -m onnxship.serve``: the standalone scorer's command line."""

import sys

from onnxship.serve.cli import main

sys.exit(main())
