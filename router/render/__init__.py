"""What a notification says: the message view, its JSON form, templates and text helpers."""
