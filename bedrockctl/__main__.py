import sys

from bedrockctl.main import main

sys.exit(main())
