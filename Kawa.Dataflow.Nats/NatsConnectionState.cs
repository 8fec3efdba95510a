namespace Kawa.Dataflow.Nats;

/// <summary>Where a NATS connection is in its life.</summary>
public enum NatsConnectionState
{
    /// <summary>Not yet connected.</summary>
    Disconnected = 0,

    /// <summary>Making the first connection.</summary>
    Connecting = 1,

    /// <summary>Connected and handshaken.</summary>
    Connected = 2,

    /// <summary>Lost the connection; trying the servers again. Publishes go to the reconnect buffer.</summary>
    Reconnecting = 3,

    /// <summary>Closed for good (disposed, drained, or out of reconnect attempts).</summary>
    Closed = 4,
}
