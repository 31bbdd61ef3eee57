"""Training and offline evaluation of the re-ID network on MARS, PRID-2011, iLIDS-VID and synthetic data."""
