"""Predict with a trained run: `python scripts/predict.py outputs/runs/<date>/<time> 5`."""

import sys

from linreg.predict import main

if __name__ == "__main__":
    sys.exit(main())
