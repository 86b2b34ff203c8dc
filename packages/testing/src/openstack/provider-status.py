"""The provider side of a test Octavia: what a real provider driver reports, after a delay.

Octavia's noop provider accepts every request and never moves anything out of PENDING_*. A real
provider (amphora, OVN, F5, ...) does the work and then reports the outcome through Octavia's
driver-agent status API. This process plays that provider: it watches Octavia's database and,
once a load balancer has been PENDING_* for the configured delay, reports its outcome with
Octavia's own `DriverUpdater.update_loadbalancer_status` (the code behind the driver agent's
status socket): PENDING_CREATE/PENDING_UPDATE -> ACTIVE (operating status ONLINE) and
PENDING_DELETE -> DELETED, for the load balancer and its pending children (a deleted load
balancer takes all its children with it, as a cascade delete does).

When Octavia's network driver is Neutron's (allowed_address_pairs_driver), reporting DELETED
through DriverUpdater also deallocates the load balancer's VIP port in Neutron, as it does for a
real provider.

It also serves, for the test that started it:
- a proxy in front of octavia-api (the endpoint registered in Keystone) that records every
  request, can answer the next N matching ones with 503 (Octavia's fault body), and can hold
  Octavia's answer to the next N matching ones for a while (the client then acts on a stale
  read, which makes real races such as a 409 on an immutable load balancer reproducible);
- optionally the same proxy in front of neutron-server (503s then carry Neutron's fault body);
- a control port (JSON over HTTP) to change the delay, slow down single load balancers, make
  the next provisioning of a load balancer end in ERROR, inject 503s, and read the records.

Usage: /usr/bin/python3 provider-status.py --config-file octavia.conf --db octavia.db
       --control-port P --proxy-port Q --upstream http://127.0.0.1:R [--delay 2] [--interval 0.1]
       [--neutron-proxy-port S --neutron-upstream http://127.0.0.1:T]
"""
import argparse
import http.client
import json
import sqlite3
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PENDING = ('PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE')


class State:
    """Everything the control port can change or read, behind one lock."""

    def __init__(self, delay):
        self.lock = threading.Lock()
        self.delay = delay
        self.lb_delays = {}  # load balancer id or name -> seconds
        self.errors = {}  # load balancer id or name or '*' -> how many provisionings end in ERROR
        self.fail503 = None  # {'count': n, 'method', 'pathContains', 'service': str|None}
        self.hold = None  # {'count': n, 'method', 'pathContains', 'ms'}: answer late (a stale read)
        self.holding = 0  # answers being held right now
        self.paused = False
        self.requests = []  # [{'service', 'method', 'path', 'status'}]
        self.transitions = []  # [{'id', 'name', 'from', 'to'}]

    def snapshot(self):
        with self.lock:
            return {
                'delay': self.delay,
                'lbDelays': dict(self.lb_delays),
                'errors': dict(self.errors),
                'fail503': self.fail503,
                'hold': self.hold,
                'holding': self.holding,
                'paused': self.paused,
            }


def rows(db, sql, args=()):
    return db.execute(sql, args).fetchall()


class Provider:
    """Polls the database and reports provisioning outcomes through DriverUpdater."""

    def __init__(self, state, db_path, interval):
        from octavia.api.drivers.driver_agent import driver_updater
        from octavia_lib.common import constants as lib_consts

        self.ok = lib_consts.DRVR_STATUS_CODE_OK

        self.state = state
        self.interval = interval
        self.updater = driver_updater.DriverUpdater()
        self.db = sqlite3.connect(db_path, timeout=30, check_same_thread=False)
        self.first_seen = {}  # (lb id, status) -> monotonic time

    def run(self):
        while True:
            try:
                self.tick()
            except Exception as err:  # the database may be busy: try again next tick
                print(f'provider-status: tick failed: {err!r}', file=sys.stderr, flush=True)
            time.sleep(self.interval)

    def delay_for(self, lb_id, name):
        with self.state.lock:
            for key in (lb_id, name):
                if key and key in self.state.lb_delays:
                    return self.state.lb_delays[key]
            return self.state.delay

    def take_error(self, lb_id, name):
        with self.state.lock:
            for key in (lb_id, name, '*'):
                left = self.state.errors.get(key, 0) if key else 0
                if left > 0:
                    if left == 1:
                        del self.state.errors[key]
                    else:
                        self.state.errors[key] = left - 1
                    return True
        return False

    def tick(self):
        with self.state.lock:
            if self.state.paused:
                return
        pending = rows(
            self.db,
            'SELECT id, name, provisioning_status FROM load_balancer WHERE provisioning_status IN (?, ?, ?)',
            PENDING,
        )
        now = time.monotonic()
        live = set()
        for lb_id, name, status in pending:
            key = (lb_id, status)
            live.add(key)
            seen = self.first_seen.setdefault(key, now)
            if now - seen < self.delay_for(lb_id, name):
                continue
            self.complete(lb_id, name or '', status)
            self.first_seen.pop(key, None)
        for key in list(self.first_seen):
            if key not in live:
                del self.first_seen[key]

    def children(self, lb_id):
        listeners = rows(self.db, 'SELECT id, provisioning_status FROM listener WHERE load_balancer_id = ?', (lb_id,))
        pools = rows(self.db, 'SELECT id, provisioning_status FROM pool WHERE load_balancer_id = ?', (lb_id,))
        pool_ids = [p[0] for p in pools]
        members, monitors = [], []
        for pool_id in pool_ids:
            members += rows(self.db, 'SELECT id, provisioning_status FROM member WHERE pool_id = ?', (pool_id,))
            monitors += rows(self.db, 'SELECT id, provisioning_status FROM health_monitor WHERE pool_id = ?', (pool_id,))
        policies, rules = [], []
        for listener_id, _ in listeners:
            policies += rows(self.db, 'SELECT id, provisioning_status FROM l7policy WHERE listener_id = ?', (listener_id,))
        for policy_id, _ in policies:
            rules += rows(self.db, 'SELECT id, provisioning_status FROM l7rule WHERE l7policy_id = ?', (policy_id,))
        return {
            'listeners': listeners,
            'pools': pools,
            'members': members,
            'healthmonitors': monitors,
            'l7policies': policies,
            'l7rules': rules,
        }

    def complete(self, lb_id, name, status):
        fail = self.take_error(lb_id, name)
        deleting = status == 'PENDING_DELETE'
        report = {}
        for kind, objects in self.children(lb_id).items():
            entries = []
            for obj_id, obj_status in objects:
                if deleting:
                    entries.append({'id': obj_id, 'provisioning_status': 'DELETED'} if not fail else
                                   {'id': obj_id, 'provisioning_status': 'ERROR'})
                elif obj_status == 'PENDING_DELETE':
                    entries.append({'id': obj_id, 'provisioning_status': 'ERROR' if fail else 'DELETED'})
                elif obj_status in PENDING:
                    entries.append({'id': obj_id, 'provisioning_status': 'ERROR' if fail else 'ACTIVE',
                                    'operating_status': 'ERROR' if fail else 'ONLINE'})
            if entries:
                report[kind] = entries
        if fail:
            outcome = {'id': lb_id, 'provisioning_status': 'ERROR', 'operating_status': 'ERROR'}
        elif deleting:
            outcome = {'id': lb_id, 'provisioning_status': 'DELETED', 'operating_status': 'OFFLINE'}
        else:
            outcome = {'id': lb_id, 'provisioning_status': 'ACTIVE', 'operating_status': 'ONLINE'}
        report['loadbalancers'] = [outcome]
        result = self.updater.update_loadbalancer_status(report)
        if result.get('status_code') != self.ok:
            raise RuntimeError(f'status update for {lb_id} failed: {result}')
        with self.state.lock:
            self.state.transitions.append(
                {'id': lb_id, 'name': name, 'from': status, 'to': outcome['provisioning_status']})


def matches(rule, service, method, path):
    return rule and rule['count'] > 0 \
        and (not rule.get('service') or rule['service'] == service) \
        and (not rule.get('method') or method in (rule['method'] if isinstance(rule['method'], list) else [rule['method']])) \
        and (not rule.get('pathContains') or rule['pathContains'] in path)


def injected_fault(service):
    if service == 'neutron':
        return {'NeutronError': {'type': 'ServiceUnavailable', 'detail': '',
                                 'message': 'Neutron is busy, try again later (injected by provider-status)'}}
    return {'faultcode': 'Server', 'debuginfo': None,
            'faultstring': 'Provider is busy, try again later (injected by provider-status)'}


def make_proxy(state, upstream, service):
    target = urllib.parse.urlsplit(upstream)

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, fmt, *args):
            pass

        def handle_any(self):
            length = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(length) if length else None
            path = urllib.parse.urlsplit(self.path).path
            injected = False
            with state.lock:
                rule = state.fail503
                if matches(rule, service, self.command, path):
                    rule['count'] -= 1
                    injected = True
            if injected and rule.get('malformed'):
                self.answer(200, [('Content-Type', 'text/html')], b'<html><body>maintenance</body></html>', path)
                return
            if injected:
                payload = json.dumps(injected_fault(service)).encode()
                self.answer(503, [('Content-Type', 'application/json')], payload, path)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ('connection', 'keep-alive')}
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                res = conn.getresponse()
                data = res.read()
                passed = [(k, v) for k, v in res.getheaders()
                          if k.lower() not in ('connection', 'keep-alive', 'transfer-encoding', 'content-length')]
                hold_ms = 0
                with state.lock:
                    rule = state.hold
                    if matches(rule, service, self.command, path):
                        rule['count'] -= 1
                        hold_ms = rule['ms']
                        state.holding += 1
                if hold_ms:
                    # Octavia has answered; deliver it late, so the client acts on a stale read.
                    time.sleep(hold_ms / 1000)
                    with state.lock:
                        state.holding -= 1
                self.answer(res.status, passed, data, path)
            except Exception as err:
                self.answer(502, [('Content-Type', 'text/plain')], f'proxy error: {err!r}'.encode(), path)
            finally:
                conn.close()

        def answer(self, status, headers, data, path):
            with state.lock:
                state.requests.append({'service': service, 'method': self.command, 'path': path, 'status': status})
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

    return Proxy


def make_control(state):
    class Control(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, fmt, *args):
            pass

        def reply(self, status, obj):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == '/health':
                self.reply(200, {'ok': True})
            elif self.path == '/state':
                self.reply(200, state.snapshot())
            elif self.path == '/requests':
                with state.lock:
                    self.reply(200, list(state.requests))
            elif self.path == '/transitions':
                with state.lock:
                    self.reply(200, list(state.transitions))
            else:
                self.reply(404, {'error': 'not found'})

        def do_POST(self):
            length = int(self.headers.get('Content-Length') or 0)
            try:
                body = json.loads(self.rfile.read(length) or b'{}')
            except ValueError:
                self.reply(400, {'error': 'body is not JSON'})
                return
            if self.path == '/requests/reset':
                with state.lock:
                    state.requests.clear()
                    state.transitions.clear()
                self.reply(200, {'ok': True})
                return
            if self.path != '/config' or not isinstance(body, dict):
                self.reply(404, {'error': 'not found'})
                return
            with state.lock:
                if 'delay' in body:
                    state.delay = float(body['delay'])
                for key, value in (body.get('lbDelays') or {}).items():
                    if value is None:
                        state.lb_delays.pop(key, None)
                    else:
                        state.lb_delays[key] = float(value)
                for key, value in (body.get('errors') or {}).items():
                    if value:
                        state.errors[key] = int(value)
                    else:
                        state.errors.pop(key, None)
                if 'fail503' in body:
                    rule = body['fail503']
                    state.fail503 = None if rule is None else {
                        'count': int(rule.get('count', 1)),
                        'method': rule.get('method'),
                        'pathContains': rule.get('pathContains'),
                        'service': rule.get('service'),
                        'malformed': bool(rule.get('malformed')),
                    }
                if 'hold' in body:
                    rule = body['hold']
                    state.hold = None if rule is None else {
                        'count': int(rule.get('count', 1)),
                        'method': rule.get('method'),
                        'pathContains': rule.get('pathContains'),
                        'service': rule.get('service'),
                        'ms': float(rule.get('ms', 1000)),
                    }
                if 'paused' in body:
                    state.paused = bool(body['paused'])
            self.reply(200, state.snapshot())

    return Control


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--config-file', required=True)
    parser.add_argument('--db', required=True)
    parser.add_argument('--control-port', type=int, required=True)
    parser.add_argument('--proxy-port', type=int, required=True)
    parser.add_argument('--upstream', required=True)
    parser.add_argument('--delay', type=float, default=2.0)
    parser.add_argument('--interval', type=float, default=0.1)
    parser.add_argument('--neutron-proxy-port', type=int)
    parser.add_argument('--neutron-upstream')
    args = parser.parse_args()

    from oslo_config import cfg
    from octavia.common import config

    config.init([], default_config_files=[args.config_file])
    cfg.CONF.set_override('connection', 'sqlite:///' + args.db + '?timeout=60', group='database')

    state = State(args.delay)
    provider = Provider(state, args.db, args.interval)
    servers = [
        ThreadingHTTPServer(('127.0.0.1', args.proxy_port), make_proxy(state, args.upstream, 'octavia')),
        ThreadingHTTPServer(('127.0.0.1', args.control_port), make_control(state)),
    ]
    if args.neutron_proxy_port:
        servers.append(ThreadingHTTPServer(('127.0.0.1', args.neutron_proxy_port),
                                           make_proxy(state, args.neutron_upstream, 'neutron')))
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f'provider-status: proxy on {args.proxy_port}, control on {args.control_port}', flush=True)
    provider.run()


if __name__ == '__main__':
    main()
