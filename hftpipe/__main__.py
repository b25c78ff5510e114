"""``python -m hftpipe``: the command-line interface."""

from hftpipe.cli import main

raise SystemExit(main())
