using System.Net;
using System.Net.Sockets;

namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

/// <summary>
/// A loopback TCP forwarder in front of a server, so a test can cut the client's connection (a real socket close) while
/// the server keeps running with all its state, and keep the client out (connections refused) for as long as it needs.
/// It can also hold what the server sends the client (<see cref="HoldToClient"/>) while the client's own writes still
/// reach the server: data in flight, on demand.
/// </summary>
internal sealed class TcpCutProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly List<Socket> _open = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private volatile bool _refusing;
    private volatile TaskCompletionSource _toClient = Open();

    private TcpCutProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public string Url => $"nats://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public static TcpCutProxy To(NatsServerProcess server) => new(server.Port);

    /// <summary>Closes every forwarded connection and refuses new ones until <see cref="Admit"/>.</summary>
    public void CutAndRefuse()
    {
        _refusing = true;
        lock (_open)
        {
            foreach (var socket in _open)
            {
                socket.Dispose();
            }

            _open.Clear();
        }
    }

    /// <summary>Forwards new connections again.</summary>
    public void Admit() => _refusing = false;

    /// <summary>Stops forwarding server-to-client data (it waits in the proxy and the socket buffers) until
    /// <see cref="ReleaseToClient"/>; client-to-server data still flows.</summary>
    public void HoldToClient() => _toClient = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Forwards server-to-client data again, what was held first.</summary>
    public void ReleaseToClient() => _toClient.TrySetResult();

    private static TaskCompletionSource Open()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        CutAndRefuse();
        try
        {
            await _accepting;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptSocketAsync(_stop.Token);
            if (_refusing)
            {
                client.Dispose();
                continue;
            }

            var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            lock (_open)
            {
                _open.Add(client);
                _open.Add(server);
            }

            _ = PumpAsync(client, server, toClient: false);
            _ = PumpAsync(server, client, toClient: true);
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool toClient)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None);
                if (read == 0)
                {
                    break;
                }

                if (toClient)
                {
                    await _toClient.Task;
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Cut.
        }

        from.Dispose();
        to.Dispose();
    }
}
