import sys

from examples.client.shell import main

sys.exit(main())
