"""Launch the deocc web demo: `python demo/app.py [--port N] [--deoccluder DIR|NAME] [--fer DIR|NAME] [--baseline DIR|NAME|none] ...`.

A thin launcher: the app lives in `deocc.app` (nbs/09_app.ipynb); this file only adds the example faces shipped beside
it and runs the same code as `deocc demo` (see `deocc demo --help`), with the bundled checkpoints by default.
"""
import sys
from pathlib import Path

from deocc.cli import main

EXAMPLES = Path(__file__).resolve().parent / "examples"

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--examples" not in args and EXAMPLES.is_dir(): args += ["--examples", str(EXAMPLES)]
    sys.exit(main(["demo", *args]))
