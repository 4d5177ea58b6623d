from __future__ import annotations

from pytest_worktree_gates.cli import main

raise SystemExit(main())
