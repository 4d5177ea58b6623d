import sys
from pathlib import Path

# The example is run in place, without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
