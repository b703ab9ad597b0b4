"""``python -m onnxship.serve.spark``: batch scoring on Apache Spark from the command line.

Only this file runs as ``__main__``; the scoring function lives in ``worker``, which Spark's Python
workers import by name (functions defined in ``__main__`` would be pickled by value, each task
getting its own scorer cache).
"""

import sys

from onnxship.serve.spark.cli import main

sys.exit(main())
