"""The mentoring pages: groups, polls, and the personal links invitees vote through."""
