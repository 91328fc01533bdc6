"""Legal profiles (floor 2): what the law decides, as named, plain settings."""
