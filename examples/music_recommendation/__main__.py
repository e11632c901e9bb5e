"""``python -m examples.music_recommendation``: run the example end to end."""

import sys

from examples.music_recommendation.demo import main

sys.exit(main())
