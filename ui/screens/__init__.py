"""The business users' screens: home, entity lists, record detail and forms."""
