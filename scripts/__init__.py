"""The stage entry points. dvc.yaml runs each as `python -m scripts.<stage>` from the project root, so
Python puts the root first on sys.path and the stage imports that folder's onnxship package, also in
the copies of the repository where DVC runs experiments (.dvc/tmp/exps/), whatever checkout an
editable install points at."""
