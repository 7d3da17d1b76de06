"""A stand-in for a team's script-mode program: bench/bench_sdk_pipeline.py only packs it, nothing runs it."""

import argparse
import os

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_round", type=int, default=50)
    args = parser.parse_args()
    print("would train for", args.num_round, "rounds from", os.environ.get("SM_CHANNEL_TRAIN"))
