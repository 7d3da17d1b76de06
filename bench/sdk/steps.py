"""A stand-in for the processing steps' script: packed or referenced, never run."""

import sys

print("step", sys.argv[1:])
