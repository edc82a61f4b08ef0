#!/usr/bin/env sh
# The worker as the seed starts it: two processes, all three queues, high_priority first.
cd "$(dirname "$0")"
exec celeriac -A app.celery_app worker --loglevel=info --concurrency=2 --queues=high_priority,normal_priority,low_priority
