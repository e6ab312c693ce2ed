"""`python -m aelab` (and `torchrun -m aelab`) runs the CLI; Ctrl-C while it starts is exit 130 too."""

import signal
import sys

try:
    from aelab.cli import main
except KeyboardInterrupt:  # torch's import takes seconds: an interrupt then is still one line and 130
    sys.stderr.write("aelab: interrupted\n")
    sys.exit(130)

try:
    main()
finally:  # the command is done and its exit code chosen: a Ctrl-C while the interpreter shuts down changes nothing
    signal.signal(signal.SIGINT, signal.SIG_IGN)
