from nvr_gstreamer.cli import main

raise SystemExit(main())
