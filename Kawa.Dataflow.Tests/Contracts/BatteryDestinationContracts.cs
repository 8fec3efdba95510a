using System.Collections.Concurrent;
using System.Threading.Channels;
using Kawa.Dataflow.Testing;

namespace Kawa.Dataflow.Tests.Contracts;

/// <summary>A channel destination whose written messages can be inspected.</summary>
internal sealed class InspectableChannel
{
    private readonly Channel<Message<int>> _channel = Channel.CreateUnbounded<Message<int>>();
    private readonly ConcurrentDictionary<int, byte> _written = new();

    public InspectableChannel() => Destination = new ChannelDestination<int>(_channel.Writer);

    public ChannelDestination<int> Destination { get; }

    public bool Contains(Message<int> message)
    {
        while (_channel.Reader.TryRead(out var written))
        {
            _written.TryAdd(written.Value, 0);
        }

        return _written.ContainsKey(message.Value);
    }

    public void Close() => _channel.Writer.TryComplete();
}

public abstract class IntDestinationContract : DestinationContract<int>
{
    protected override Message<int> CreateMessage(int index) => new(index, Key: $"k{index}");
}

public class ChannelDestinationContractTests : DestinationContractTests<int>
{
    protected override DestinationContract<int> Contract { get; } = new ChannelContract();

    private sealed class ChannelContract : IntDestinationContract
    {
        protected override ValueTask<DestinationUnderTest<int>> CreateAsync()
        {
            var channel = new InspectableChannel();
            return new(new DestinationUnderTest<int> { Destination = channel.Destination, IsDurable = channel.Contains, BreakWrites = channel.Close });
        }
    }
}

public class WriterDestinationContractTests : DestinationContractTests<int>
{
    protected override DestinationContract<int> Contract { get; } = new WriterContract();

    private sealed class WriterContract : IntDestinationContract
    {
        protected override ValueTask<DestinationUnderTest<int>> CreateAsync()
        {
            var writer = new BreakableWriter();
            var destination = WriterDestination.ForWriter<int>(writer);
            return new(new DestinationUnderTest<int>
            {
                Destination = destination,
                IsDurable = m => writer.Flushed.Split('\n').Contains(m.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                BreakWrites = () => writer.Broken = true,
                Cleanup = () => { destination.Dispose(); return default; },
            });
        }
    }

    /// <summary>Counts as durable only what was flushed; can be made to fail.</summary>
    private sealed class BreakableWriter : StringWriter
    {
        public volatile bool Broken;

        public string Flushed { get; private set; } = string.Empty;

        public override Task WriteAsync(System.Text.StringBuilder? value, CancellationToken cancellationToken = default)
            => Broken ? throw new IOException("broken pipe") : base.WriteAsync(value, cancellationToken);

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            Flushed = ToString();
            return Task.CompletedTask;
        }
    }
}

public class FanOutDestinationContractTests : DestinationContractTests<int>
{
    protected override DestinationContract<int> Contract { get; } = new FanOutContract();

    private sealed class FanOutContract : IntDestinationContract
    {
        protected override ValueTask<DestinationUnderTest<int>> CreateAsync()
        {
            var a = new InspectableChannel();
            var b = new InspectableChannel();
            return new(new DestinationUnderTest<int>
            {
                Destination = new FanOutDestination<int>(a.Destination, b.Destination),
                IsDurable = m => a.Contains(m) && b.Contains(m),
                BreakWrites = b.Close,
            });
        }
    }
}

public class RouterDestinationContractTests : DestinationContractTests<int>
{
    protected override DestinationContract<int> Contract { get; } = new RouterContract();

    private sealed class RouterContract : IntDestinationContract
    {
        protected override ValueTask<DestinationUnderTest<int>> CreateAsync()
        {
            var even = new InspectableChannel();
            var odd = new InspectableChannel();
            var router = RouterDestination<int>.ByKey(
                m => m.Value % 2 == 0 ? "even" : "odd",
                new Dictionary<string, IDestination<int>> { ["even"] = even.Destination, ["odd"] = odd.Destination });
            return new(new DestinationUnderTest<int>
            {
                Destination = router,
                IsDurable = m => (m.Value % 2 == 0 ? even : odd).Contains(m),
                BreakWrites = () => { even.Close(); odd.Close(); },
            });
        }
    }
}

public class BatchingDestinationContractTests : DestinationContractTests<int>
{
    protected override DestinationContract<int> Contract { get; } = new BatchingContract();

    private sealed class BatchingContract : IntDestinationContract
    {
        protected override ValueTask<DestinationUnderTest<int>> CreateAsync()
        {
            var written = new ConcurrentDictionary<int, byte>();
            var broken = false;
            var sink = new BatchingDestination<int>(
                (batch, _) =>
                {
                    if (Volatile.Read(ref broken))
                    {
                        throw new IOException("object store unavailable");
                    }

                    foreach (var message in batch)
                    {
                        written.TryAdd(message.Value, 0);
                    }

                    return default;
                },
                new BatchingOptions<int> { MaxBatchSize = 2, MaxBatchAge = Timeout.InfiniteTimeSpan, MaxRetries = 0 });
            return new(new DestinationUnderTest<int>
            {
                Destination = sink,
                IsDurable = m => written.ContainsKey(m.Value),
                BreakWrites = () => Volatile.Write(ref broken, true),
                Cleanup = sink.DisposeAsync,
            });
        }
    }
}

/// <summary>The Parquet shape: flushes append rows to an open file and defer their acks; the drain commits the file and acks.</summary>
public class DeferredAckBatchingDestinationContractTests : DestinationContractTests<int>
{
    protected override DestinationContract<int> Contract { get; } = new DeferredContract();

    private sealed class DeferredContract : IntDestinationContract
    {
        protected override ValueTask<DestinationUnderTest<int>> CreateAsync()
        {
            var file = new OpenFileFlusher();
            var sink = new BatchingDestination<int>(file, new BatchingOptions<int> { MaxBatchSize = 2, MaxBatchAge = Timeout.InfiniteTimeSpan, MaxRetries = 0, OnError = BatchErrorHandler<int>.NegativeAck() });
            return new(new DestinationUnderTest<int>
            {
                Destination = sink,
                IsDurable = m => file.Committed.ContainsKey(m.Value),
                BreakWrites = () => file.Broken = true,
                Cleanup = sink.DisposeAsync,
            });
        }
    }

    private sealed class OpenFileFlusher : IBatchFlusher<int>
    {
        private readonly Lock _lock = new();
        private readonly List<int> _openRows = [];
        private readonly List<DeferredAcks> _openAcks = [];

        public volatile bool Broken;

        public ConcurrentDictionary<int, byte> Committed { get; } = new();

        public ValueTask FlushAsync(Batch<int> batch, CancellationToken cancellationToken)
        {
            if (Broken)
            {
                throw new IOException("disk full");
            }

            lock (_lock)
            {
                _openRows.AddRange(batch.Messages.Select(m => m.Value));
                _openAcks.Add(batch.DeferAcks());
            }

            return default;
        }

        // The checkpoint commits the open file just as the drain does; the sink keeps running.
        public ValueTask CommitHeldAsync(CancellationToken cancellationToken) => CompleteAsync(cancellationToken);

        public ValueTask CompleteAsync(CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                if (Broken)
                {
                    _openAcks.ForEach(a => a.Nack());
                }
                else
                {
                    _openRows.ForEach(r => Committed.TryAdd(r, 0));
                    _openAcks.ForEach(a => a.Ack());
                }

                _openRows.Clear();
                _openAcks.Clear();
            }

            return default;
        }
    }
}
