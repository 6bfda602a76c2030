"""The HTTP side: a falcon app served by gunicorn with gevent workers."""
