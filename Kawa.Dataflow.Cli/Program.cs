namespace Kawa.Dataflow.Cli;

internal static class Program
{
    public static int Main(string[] args) => KawaCli.Run(args, Console.Out, Console.Error);
}
