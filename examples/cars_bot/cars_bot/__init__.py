"""The cars Telegram bot (seed 001): posts from car-sale channels are classified by AI tasks,
published to the bot's channel, and kept in sync with Google Sheets."""
