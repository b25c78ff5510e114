"""``python -m hftpipe.sim ...``: the ``hftpipe sim`` command on its own."""

from hftpipe.sim.cli import main

raise SystemExit(main())
