"""In-app notifications on the screens: the bell in the header and the notifications page."""
