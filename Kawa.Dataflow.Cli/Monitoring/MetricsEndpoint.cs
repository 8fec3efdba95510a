using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Kawa.Dataflow.Cli.Monitoring;

/// <summary>
/// A tiny HTTP/1.1 server on a loopback port: <c>GET /metrics</c> (Prometheus text format) and <c>GET /healthz</c>
/// (200 <c>ok</c> while running, 503 <c>draining</c> once a stop began). One request per connection.
/// </summary>
/// <remarks>Loopback only on purpose: exposing it further is a deployment decision (a sidecar or port forward).</remarks>
internal sealed class MetricsEndpoint : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly MetricsCollector _metrics;
    private readonly Func<bool> _healthy;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private MetricsEndpoint(TcpListener listener, MetricsCollector metrics, Func<bool> healthy)
    {
        _listener = listener;
        _metrics = metrics;
        _healthy = healthy;
        _loop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The bound port.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Listens on 127.0.0.1:<paramref name="port"/>.</summary>
    /// <exception cref="SocketException">The port is taken or not allowed.</exception>
    public static MetricsEndpoint Start(int port, MetricsCollector metrics, Func<bool> healthy)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        return new MetricsEndpoint(listener, metrics, healthy);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            var stream = client.GetStream();
            var request = await ReadHeadAsync(stream, timeout.Token).ConfigureAwait(false);
            var parts = request.Split(' ', 3);
            var (status, body, type) = parts is ["GET", var target, ..] ? target.Split('?')[0] switch
            {
                "/metrics" => ("200 OK", Metrics(), "text/plain; version=0.0.4; charset=utf-8"),
                "/healthz" => _healthy() ? ("200 OK", "ok\n", "text/plain") : ("503 Service Unavailable", "draining\n", "text/plain"),
                _ => ("404 Not Found", "not found: try /metrics or /healthz\n", "text/plain"),
            }
            : ("405 Method Not Allowed", "only GET\n", "text/plain");
            var bytes = Encoding.UTF8.GetBytes(body);
            var head = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n"));
            await stream.WriteAsync(head, timeout.Token).ConfigureAwait(false);
            await stream.WriteAsync(bytes, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException)
        {
            // A client that went away or stalled: nothing to report.
        }
    }

    private string Metrics()
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        _metrics.WritePrometheus(writer);
        return writer.ToString();
    }

    private static async Task<string> ReadHeadAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[8192];
        var length = 0;
        while (length < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            length += read;
            var text = Encoding.ASCII.GetString(buffer, 0, length);
            var end = text.IndexOf("\r\n", StringComparison.Ordinal);
            if (text.Contains("\r\n\r\n", StringComparison.Ordinal) && end >= 0)
            {
                return text[..end];
            }
        }

        var all = Encoding.ASCII.GetString(buffer, 0, length);
        var lineEnd = all.IndexOf('\n', StringComparison.Ordinal);
        return (lineEnd >= 0 ? all[..lineEnd] : all).TrimEnd('\r');
    }
}
