"""The admin area: metadata configuration with migration plans, users and the org tree."""
