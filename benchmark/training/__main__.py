"""``python -m benchmark.training [--model toy_vgg|toy_gap] [--force]``: train the toy models."""

from benchmark.training.toy import main

if __name__ == "__main__":
    main()
