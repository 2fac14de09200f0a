from disentangle.cli import main

raise SystemExit(main())
