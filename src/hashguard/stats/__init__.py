"""Statistics (floor 3): yearly counts kept as things happen, and the annual transparency
report built from them. No personal data: counts outlive the detections they count."""
