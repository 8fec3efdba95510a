using System.Runtime.InteropServices;

namespace Kawa.Dataflow.Cli.Running;

/// <summary>
/// SIGINT (Ctrl+C) and SIGTERM for <c>kawa run</c>: the first asks for a graceful drain
/// (<see cref="DrainRequested"/>), the second gives up waiting (<see cref="Forced"/>; the process exits 130).
/// </summary>
/// <remarks>The default termination is cancelled for both signals, so the runner decides how the process ends.</remarks>
internal sealed class ShutdownSignals : IDisposable
{
    private readonly CancellationTokenSource _drain = new();
    private readonly TaskCompletionSource<PosixSignal> _forced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PosixSignalRegistration[] _registrations;
    private int _count;

    /// <summary>Registers the handlers.</summary>
    /// <param name="onFirst">Called on the first signal (before the drain is requested), e.g. to log it.</param>
    public ShutdownSignals(Action<PosixSignal> onFirst)
    {
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
        ];

        void Handle(PosixSignalContext context)
        {
            context.Cancel = true;
            if (Interlocked.Increment(ref _count) == 1)
            {
                onFirst(context.Signal);
                _drain.Cancel();
            }
            else
            {
                _forced.TrySetResult(context.Signal);
            }
        }
    }

    /// <summary>Fires on the first signal.</summary>
    public CancellationToken DrainRequested => _drain.Token;

    /// <summary>Completes on the second signal.</summary>
    public Task<PosixSignal> Forced => _forced.Task;

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _drain.Dispose();
    }
}
