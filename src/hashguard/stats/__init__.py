"""Statistics (floor 3): the annual transparency report, built from the yearly counts the
workflows keep as things happen (``store.counts``). No personal data: counts outlive the
detections they count."""
