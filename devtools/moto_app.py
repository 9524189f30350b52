"""moto's AWS stand-in as a WSGI app, served by hypercorn (HTTP/1.1 and HTTP/2: the KCL daemon's
Kinesis client speaks HTTP/2, which moto_server's own werkzeug server does not). Loaded as
`devtools.moto_app:app` by devtools.moto_server, and as `moto_app:app` by docker-compose.yml, which
mounts this file alone: it imports nothing from the repository."""

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

app = DomainDispatcherApplication(create_backend_app)
