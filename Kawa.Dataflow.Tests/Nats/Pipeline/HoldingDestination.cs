using System.Collections.Concurrent;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>
/// Records every delivery's stream sequence and holds each ack token until <see cref="Release"/>; from then on it acks
/// at once. While it holds, the pipeline stops reading at its in-flight limit with everything read still unacked.
/// </summary>
internal sealed class HoldingDestination : IDestination<byte[]>
{
    private readonly Lock _lock = new();
    private List<AckToken>? _held = [];

    public ConcurrentQueue<ulong> Seen { get; } = new();

    /// <summary>Deliveries whose delivery count was above 1 (redeliveries the server counted as such).</summary>
    public int Redeliveries => Volatile.Read(ref _redeliveries);

    private int _redeliveries;

    public ValueTask SendAsync(AckToken ack, Messages<byte[]> messages, CancellationToken cancellationToken = default)
    {
        foreach (var m in messages)
        {
            Seen.Enqueue(m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence));
            if (m.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount) > 1)
            {
                Interlocked.Increment(ref _redeliveries);
            }
        }

        lock (_lock)
        {
            if (_held is not null)
            {
                _held.Add(ack);
                return ValueTask.CompletedTask;
            }
        }

        ack.Ack();
        return ValueTask.CompletedTask;
    }

    /// <summary>Acks every held token; later ones are acked as they come.</summary>
    public void Release()
    {
        List<AckToken> held;
        lock (_lock)
        {
            held = _held ?? [];
            _held = null;
        }

        foreach (var token in held)
        {
            token.Ack();
        }
    }
}
