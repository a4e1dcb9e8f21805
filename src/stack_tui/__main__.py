from stack_tui.cli import main

raise SystemExit(main())
