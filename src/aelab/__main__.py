"""`python -m aelab` (and `torchrun -m aelab`) runs the CLI; Ctrl-C while it starts is exit 130 too."""

import sys

try:
    from aelab.cli import main
except KeyboardInterrupt:  # torch's import takes seconds: an interrupt then is still one line and 130
    sys.stderr.write("aelab: interrupted\n")
    sys.exit(130)

main()
