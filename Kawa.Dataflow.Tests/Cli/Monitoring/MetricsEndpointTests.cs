using Kawa.Dataflow.Cli.Monitoring;

namespace Kawa.Dataflow.Tests.Cli.Monitoring;

public class MetricsEndpointTests
{
    [Test]
    public async Task Healthz_WhileRunningThenDraining_200OkThen503Draining()
    {
        using var metrics = new MetricsCollector();
        var healthy = true;
        await using var endpoint = MetricsEndpoint.Start(0, metrics, () => Volatile.Read(ref healthy));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{endpoint.Port}"), Timeout = TimeSpan.FromSeconds(30) };

        using var running = await http.GetAsync("/healthz");
        Volatile.Write(ref healthy, false); // what a first SIGINT/SIGTERM does: the run starts draining
        using var draining = await http.GetAsync("/healthz");
        var runningText = await running.Content.ReadAsStringAsync();
        var drainingText = await draining.Content.ReadAsStringAsync();

        Assert.Multiple(() =>
        {
            Assert.That((int)running.StatusCode, Is.EqualTo(200));
            Assert.That(runningText, Is.EqualTo("ok\n"));
            Assert.That((int)draining.StatusCode, Is.EqualTo(503), "a load balancer or orchestrator stops sending work");
            Assert.That(drainingText, Is.EqualTo("draining\n"));
        });
    }
}
