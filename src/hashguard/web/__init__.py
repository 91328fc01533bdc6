"""Pages (floor 4): the reviewers' desk and the users' complaint page, rendered on the server
(Jinja2) with a little JavaScript of our own for the keyboard and the blur."""
