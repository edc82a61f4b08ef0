"""All the bot's tasks, importable from one place: ``from cars_bot.tasks import process_post_task``."""

from cars_bot.tasks.ai_tasks import process_post_task
from cars_bot.tasks.monitoring_tasks import (
    check_subscriptions_task,
    cleanup_old_results_task,
    collect_stats_task,
    update_analytics_task,
)
from cars_bot.tasks.publishing_tasks import publish_post_task
from cars_bot.tasks.sheets_tasks import sync_channels_task, sync_subscribers_task

__all__ = [
    "check_subscriptions_task",
    "cleanup_old_results_task",
    "collect_stats_task",
    "process_post_task",
    "publish_post_task",
    "sync_channels_task",
    "sync_subscribers_task",
    "update_analytics_task",
]
