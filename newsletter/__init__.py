"""newsletter: self-hosted, personalised daily research-paper digests.

Data flows one way: sources → papers → embeddings → ranking → rendering → delivery.
The CLI (`newsletter.cli`) and the scheduler (`jobs`) sit on top and call the same functions.
"""

__version__ = "0.1.0"
