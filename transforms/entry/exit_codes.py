"""The CLI's exit codes (README "The CLI"): one place, so every command module can name them."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FILE_ERRORS = 0, 1, 2, 3
EXIT_FITS_WITH_REJECTS, EXIT_NO_FORMAT = 4, 5          # `formats check`
EXIT_NIGHT_BUSY = 6                                     # `run`: another live run holds the night's lease
EXIT_ZONES_OPEN = 7                                     # `run`: a zone is looser than the policy's access
EXIT_NOTHING_LANDED = 8                                 # `run`: completed, but the landing held no file to read
