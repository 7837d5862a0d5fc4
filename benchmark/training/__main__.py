"""``python -m benchmark.training [--model NAME] [--retrain]``: verify (or retrain) the shipped toy weights."""

from benchmark.training.toy import main

if __name__ == "__main__":
    main()
